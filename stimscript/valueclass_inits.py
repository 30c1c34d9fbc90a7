# mypy: disable-error-code="no-redef"
"""The ``__init__`` sources of the value classes of the package, compiled with it (generated: do not edit).

stimscript.valueclass builds each ``__init__`` from the source the standard library would write; for the
package's own classes it takes the compiled code from here, read from the cached bytecode, instead of
compiling the text in every process. tests/test_valueclass.py fails when this file is out of date; rewrite it
with ``python tests/test_valueclass.py``. Every source defines ``__create_fn__`` (the name the standard
library gives it), hence the redefinitions mypy is told to allow.
"""
from __future__ import annotations

#: what the source depends on (stimscript.valueclass._init_key) -> its ``__create_fn__``
CREATORS: dict = {}


def __create_fn__(MISSING, _HAS_DEFAULT_FACTORY, __dataclass_builtins_object__, _dflt_motor_points):
 def __init__(self,name,region,muscle,landmark,typical_electrode,source,motor_points=_dflt_motor_points):
  __dataclass_builtins_object__.__setattr__(self,'name',name)
  __dataclass_builtins_object__.__setattr__(self,'region',region)
  __dataclass_builtins_object__.__setattr__(self,'muscle',muscle)
  __dataclass_builtins_object__.__setattr__(self,'landmark',landmark)
  __dataclass_builtins_object__.__setattr__(self,'typical_electrode',typical_electrode)
  __dataclass_builtins_object__.__setattr__(self,'source',source)
  __dataclass_builtins_object__.__setattr__(self,'motor_points',motor_points)
 return __init__


CREATORS[(True, (('name', 0), ('region', 0), ('muscle', 0), ('landmark', 0), ('typical_electrode', 0), ('source', 0), ('motor_points', 1)))] = __create_fn__


def __create_fn__(MISSING, _HAS_DEFAULT_FACTORY, __dataclass_builtins_object__, _dflt_spacing, _dflt_window, _dflt_expanded, _dflt_over_budget):
 def __init__(self,channel,facts,spacing=_dflt_spacing,window=_dflt_window,expanded=_dflt_expanded,over_budget=_dflt_over_budget):
  self.channel=channel
  self.facts=facts
  self.spacing=spacing
  self.window=window
  self.expanded=expanded
  self.over_budget=over_budget
 return __init__


CREATORS[(False, (('channel', 0), ('facts', 0), ('spacing', 1), ('window', 1), ('expanded', 1), ('over_budget', 1)))] = __create_fn__


def __create_fn__(MISSING, _HAS_DEFAULT_FACTORY, __dataclass_builtins_object__):
 def __init__(self,us,t_first,t_second,kind,train_first,train_second):
  self.us=us
  self.t_first=t_first
  self.t_second=t_second
  self.kind=kind
  self.train_first=train_first
  self.train_second=train_second
 return __init__


CREATORS[(False, (('us', 0), ('t_first', 0), ('t_second', 0), ('kind', 0), ('train_first', 0), ('train_second', 0)))] = __create_fn__


def __create_fn__(MISSING, _HAS_DEFAULT_FACTORY, __dataclass_builtins_object__, _dflt_k_lo, _dflt_k_hi, _dflt_first_off, _dflt_last_off, _dflt_peak_ua, _dflt_first_ua, _dflt_weight, _dflt_in_cycle_spacing, _dflt_cross_cycle_spacing, _dflt_wbound, _dflt_ekey):
 def __init__(self,index,train,k_lo=_dflt_k_lo,k_hi=_dflt_k_hi,first_off=_dflt_first_off,last_off=_dflt_last_off,peak_ua=_dflt_peak_ua,first_ua=_dflt_first_ua,weight=_dflt_weight,in_cycle_spacing=_dflt_in_cycle_spacing,cross_cycle_spacing=_dflt_cross_cycle_spacing,wbound=_dflt_wbound,ekey=_dflt_ekey):
  self.index=index
  self.train=train
  self.k_lo=k_lo
  self.k_hi=k_hi
  self.first_off=first_off
  self.last_off=last_off
  self.peak_ua=peak_ua
  self.first_ua=first_ua
  self.weight=weight
  self.in_cycle_spacing=in_cycle_spacing
  self.cross_cycle_spacing=cross_cycle_spacing
  self.wbound=wbound
  self.ekey=ekey
 return __init__


CREATORS[(False, (('index', 0), ('train', 0), ('k_lo', 1), ('k_hi', 1), ('first_off', 1), ('last_off', 1), ('peak_ua', 1), ('first_ua', 1), ('weight', 1), ('in_cycle_spacing', 1), ('cross_cycle_spacing', 1), ('wbound', 1), ('ekey', 1)))] = __create_fn__


def __create_fn__(MISSING, _HAS_DEFAULT_FACTORY, __dataclass_builtins_object__, _dflt_trains, _dflt_exact):
 def __init__(self,sum_ua2us,t_start,pulses,trains=_HAS_DEFAULT_FACTORY,exact=_dflt_exact):
  self.sum_ua2us=sum_ua2us
  self.t_start=t_start
  self.pulses=pulses
  self.trains=_dflt_trains() if trains is _HAS_DEFAULT_FACTORY else trains
  self.exact=exact
 return __init__


CREATORS[(False, (('sum_ua2us', 0), ('t_start', 0), ('pulses', 0), ('trains', 2), ('exact', 1)))] = __create_fn__


def __create_fn__(MISSING, _HAS_DEFAULT_FACTORY, __dataclass_builtins_object__, _dflt_area_cm2, _dflt_rms_current_density_ma_cm2, _dflt_power_density_w_cm2, _dflt_shannon_k):
 def __init__(self,amplitude_ua,frequency_hz,charge_per_phase_uc,net_charge_ratio,rms_current_ma,energy_per_pulse_mj,peak_voltage_v,area_cm2=_dflt_area_cm2,rms_current_density_ma_cm2=_dflt_rms_current_density_ma_cm2,power_density_w_cm2=_dflt_power_density_w_cm2,shannon_k=_dflt_shannon_k):
  __dataclass_builtins_object__.__setattr__(self,'amplitude_ua',amplitude_ua)
  __dataclass_builtins_object__.__setattr__(self,'frequency_hz',frequency_hz)
  __dataclass_builtins_object__.__setattr__(self,'charge_per_phase_uc',charge_per_phase_uc)
  __dataclass_builtins_object__.__setattr__(self,'net_charge_ratio',net_charge_ratio)
  __dataclass_builtins_object__.__setattr__(self,'rms_current_ma',rms_current_ma)
  __dataclass_builtins_object__.__setattr__(self,'energy_per_pulse_mj',energy_per_pulse_mj)
  __dataclass_builtins_object__.__setattr__(self,'peak_voltage_v',peak_voltage_v)
  __dataclass_builtins_object__.__setattr__(self,'area_cm2',area_cm2)
  __dataclass_builtins_object__.__setattr__(self,'rms_current_density_ma_cm2',rms_current_density_ma_cm2)
  __dataclass_builtins_object__.__setattr__(self,'power_density_w_cm2',power_density_w_cm2)
  __dataclass_builtins_object__.__setattr__(self,'shannon_k',shannon_k)
 return __init__


CREATORS[(True, (('amplitude_ua', 0), ('frequency_hz', 0), ('charge_per_phase_uc', 0), ('net_charge_ratio', 0), ('rms_current_ma', 0), ('energy_per_pulse_mj', 0), ('peak_voltage_v', 0), ('area_cm2', 1), ('rms_current_density_ma_cm2', 1), ('power_density_w_cm2', 1), ('shannon_k', 1)))] = __create_fn__


def __create_fn__(MISSING, _HAS_DEFAULT_FACTORY, __dataclass_builtins_object__, _dflt_electrodes, _dflt_ramp_up_us, _dflt_on_us, _dflt_block, _dflt_cycle, _dflt_spans):
 def __init__(self,channel,number,amplitude_ua,frequency_hz,shape,electrodes=_dflt_electrodes,ramp_up_us=_dflt_ramp_up_us,on_us=_dflt_on_us,block=_dflt_block,cycle=_dflt_cycle,spans=_HAS_DEFAULT_FACTORY):
  __dataclass_builtins_object__.__setattr__(self,'channel',channel)
  __dataclass_builtins_object__.__setattr__(self,'number',number)
  __dataclass_builtins_object__.__setattr__(self,'amplitude_ua',amplitude_ua)
  __dataclass_builtins_object__.__setattr__(self,'frequency_hz',frequency_hz)
  __dataclass_builtins_object__.__setattr__(self,'shape',shape)
  __dataclass_builtins_object__.__setattr__(self,'electrodes',electrodes)
  __dataclass_builtins_object__.__setattr__(self,'ramp_up_us',ramp_up_us)
  __dataclass_builtins_object__.__setattr__(self,'on_us',on_us)
  __dataclass_builtins_object__.__setattr__(self,'block',block)
  __dataclass_builtins_object__.__setattr__(self,'cycle',cycle)
  __dataclass_builtins_object__.__setattr__(self,'spans',_dflt_spans() if spans is _HAS_DEFAULT_FACTORY else spans)
 return __init__


CREATORS[(True, (('channel', 0), ('number', 0), ('amplitude_ua', 0), ('frequency_hz', 0), ('shape', 0), ('electrodes', 1), ('ramp_up_us', 1), ('on_us', 1), ('block', 1), ('cycle', 1), ('spans', 2)))] = __create_fn__


def __create_fn__(MISSING, _HAS_DEFAULT_FACTORY, __dataclass_builtins_object__, _dflt_span):
 def __init__(self,name,area_cm2,span=_dflt_span):
  __dataclass_builtins_object__.__setattr__(self,'name',name)
  __dataclass_builtins_object__.__setattr__(self,'area_cm2',area_cm2)
  __dataclass_builtins_object__.__setattr__(self,'span',span)
 return __init__


CREATORS[(True, (('name', 0), ('area_cm2', 0), ('span', 1)))] = __create_fn__


def __create_fn__(MISSING, _HAS_DEFAULT_FACTORY, __dataclass_builtins_object__, _dflt_span):
 def __init__(self,bound,quantity,value,span=_dflt_span):
  __dataclass_builtins_object__.__setattr__(self,'bound',bound)
  __dataclass_builtins_object__.__setattr__(self,'quantity',quantity)
  __dataclass_builtins_object__.__setattr__(self,'value',value)
  __dataclass_builtins_object__.__setattr__(self,'span',span)
 return __init__


CREATORS[(True, (('bound', 0), ('quantity', 0), ('value', 0), ('span', 1)))] = __create_fn__


def __create_fn__(MISSING, _HAS_DEFAULT_FACTORY, __dataclass_builtins_object__, _dflt_segments, _dflt_params, _dflt_limits, _dflt_allow_monophasic, _dflt_session_span, _dflt_train_uses):
 def __init__(self,session,week,duration_us,uses,trains,shapes,channels,segments=_dflt_segments,params=_HAS_DEFAULT_FACTORY,limits=_dflt_limits,allow_monophasic=_dflt_allow_monophasic,session_span=_dflt_session_span,train_uses=_dflt_train_uses):
  self.session=session
  self.week=week
  self.duration_us=duration_us
  self.uses=uses
  self.trains=trains
  self.shapes=shapes
  self.channels=channels
  self.segments=segments
  self.params=_dflt_params() if params is _HAS_DEFAULT_FACTORY else params
  self.limits=limits
  self.allow_monophasic=allow_monophasic
  self.session_span=session_span
  self.train_uses=train_uses
 return __init__


CREATORS[(False, (('session', 0), ('week', 0), ('duration_us', 0), ('uses', 0), ('trains', 0), ('shapes', 0), ('channels', 0), ('segments', 1), ('params', 2), ('limits', 1), ('allow_monophasic', 1), ('session_span', 1), ('train_uses', 1)))] = __create_fn__


def __create_fn__(MISSING, _HAS_DEFAULT_FACTORY, __dataclass_builtins_object__):
 def __init__(self,kind,t_first,channel_first,train_first,t_second,channel_second,train_second):
  __dataclass_builtins_object__.__setattr__(self,'kind',kind)
  __dataclass_builtins_object__.__setattr__(self,'t_first',t_first)
  __dataclass_builtins_object__.__setattr__(self,'channel_first',channel_first)
  __dataclass_builtins_object__.__setattr__(self,'train_first',train_first)
  __dataclass_builtins_object__.__setattr__(self,'t_second',t_second)
  __dataclass_builtins_object__.__setattr__(self,'channel_second',channel_second)
  __dataclass_builtins_object__.__setattr__(self,'train_second',train_second)
 return __init__


CREATORS[(True, (('kind', 0), ('t_first', 0), ('channel_first', 0), ('train_first', 0), ('t_second', 0), ('channel_second', 0), ('train_second', 0)))] = __create_fn__


def __create_fn__(MISSING, _HAS_DEFAULT_FACTORY, __dataclass_builtins_object__):
 def __init__(self,index,train,offsets,duration):
  self.index=index
  self.train=train
  self.offsets=offsets
  self.duration=duration
 return __init__


CREATORS[(False, (('index', 0), ('train', 0), ('offsets', 0), ('duration', 0)))] = __create_fn__


def __create_fn__(MISSING, _HAS_DEFAULT_FACTORY, __dataclass_builtins_object__, _dflt_span, _dflt_severity, _dflt_hint, _dflt_related):
 def __init__(self,code,message,span=_dflt_span,severity=_dflt_severity,hint=_dflt_hint,related=_dflt_related):
  __dataclass_builtins_object__.__setattr__(self,'code',code)
  __dataclass_builtins_object__.__setattr__(self,'message',message)
  __dataclass_builtins_object__.__setattr__(self,'span',span)
  __dataclass_builtins_object__.__setattr__(self,'severity',severity)
  __dataclass_builtins_object__.__setattr__(self,'hint',hint)
  __dataclass_builtins_object__.__setattr__(self,'related',related)
 return __init__


CREATORS[(True, (('code', 0), ('message', 0), ('span', 1), ('severity', 1), ('hint', 1), ('related', 1)))] = __create_fn__


def __create_fn__(MISSING, _HAS_DEFAULT_FACTORY, __dataclass_builtins_object__):
 def __init__(self,message,span):
  __dataclass_builtins_object__.__setattr__(self,'message',message)
  __dataclass_builtins_object__.__setattr__(self,'span',span)
 return __init__


CREATORS[(True, (('message', 0), ('span', 0)))] = __create_fn__


def __create_fn__(MISSING, _HAS_DEFAULT_FACTORY, __dataclass_builtins_object__, _dflt_name, _dflt_channels, _dflt_max_current_ua, _dflt_current_step_ua, _dflt_min_phase_us, _dflt_max_phase_us, _dflt_max_rate_hz, _dflt_time_base_us, _dflt_independent_sources, _dflt_queue_pulses, _dflt_watchdog_ms, _dflt_max_phases_per_shape, _dflt_max_shapes, _dflt_shape_table_bytes, _dflt_shape_header_bytes, _dflt_phase_bytes, _dflt_max_relative_ppm):
 def __init__(self,name=_dflt_name,channels=_dflt_channels,max_current_ua=_dflt_max_current_ua,current_step_ua=_dflt_current_step_ua,min_phase_us=_dflt_min_phase_us,max_phase_us=_dflt_max_phase_us,max_rate_hz=_dflt_max_rate_hz,time_base_us=_dflt_time_base_us,independent_sources=_dflt_independent_sources,queue_pulses=_dflt_queue_pulses,watchdog_ms=_dflt_watchdog_ms,max_phases_per_shape=_dflt_max_phases_per_shape,max_shapes=_dflt_max_shapes,shape_table_bytes=_dflt_shape_table_bytes,shape_header_bytes=_dflt_shape_header_bytes,phase_bytes=_dflt_phase_bytes,max_relative_ppm=_dflt_max_relative_ppm):
  __dataclass_builtins_object__.__setattr__(self,'name',name)
  __dataclass_builtins_object__.__setattr__(self,'channels',channels)
  __dataclass_builtins_object__.__setattr__(self,'max_current_ua',max_current_ua)
  __dataclass_builtins_object__.__setattr__(self,'current_step_ua',current_step_ua)
  __dataclass_builtins_object__.__setattr__(self,'min_phase_us',min_phase_us)
  __dataclass_builtins_object__.__setattr__(self,'max_phase_us',max_phase_us)
  __dataclass_builtins_object__.__setattr__(self,'max_rate_hz',max_rate_hz)
  __dataclass_builtins_object__.__setattr__(self,'time_base_us',time_base_us)
  __dataclass_builtins_object__.__setattr__(self,'independent_sources',independent_sources)
  __dataclass_builtins_object__.__setattr__(self,'queue_pulses',queue_pulses)
  __dataclass_builtins_object__.__setattr__(self,'watchdog_ms',watchdog_ms)
  __dataclass_builtins_object__.__setattr__(self,'max_phases_per_shape',max_phases_per_shape)
  __dataclass_builtins_object__.__setattr__(self,'max_shapes',max_shapes)
  __dataclass_builtins_object__.__setattr__(self,'shape_table_bytes',shape_table_bytes)
  __dataclass_builtins_object__.__setattr__(self,'shape_header_bytes',shape_header_bytes)
  __dataclass_builtins_object__.__setattr__(self,'phase_bytes',phase_bytes)
  __dataclass_builtins_object__.__setattr__(self,'max_relative_ppm',max_relative_ppm)
 return __init__


CREATORS[(True, (('name', 1), ('channels', 1), ('max_current_ua', 1), ('current_step_ua', 1), ('min_phase_us', 1), ('max_phase_us', 1), ('max_rate_hz', 1), ('time_base_us', 1), ('independent_sources', 1), ('queue_pulses', 1), ('watchdog_ms', 1), ('max_phases_per_shape', 1), ('max_shapes', 1), ('shape_table_bytes', 1), ('shape_header_bytes', 1), ('phase_bytes', 1), ('max_relative_ppm', 1)))] = __create_fn__


def __create_fn__(MISSING, _HAS_DEFAULT_FACTORY, __dataclass_builtins_object__, _dflt_site, _dflt_side, _dflt_electrodes, _dflt_frequency_hz, _dflt_amplitude_ua, _dflt_shape, _dflt_param, _dflt_site_custom):
 def __init__(self,number,name,site=_dflt_site,side=_dflt_side,electrodes=_dflt_electrodes,frequency_hz=_dflt_frequency_hz,amplitude_ua=_dflt_amplitude_ua,shape=_dflt_shape,param=_dflt_param,site_custom=_dflt_site_custom):
  __dataclass_builtins_object__.__setattr__(self,'number',number)
  __dataclass_builtins_object__.__setattr__(self,'name',name)
  __dataclass_builtins_object__.__setattr__(self,'site',site)
  __dataclass_builtins_object__.__setattr__(self,'side',side)
  __dataclass_builtins_object__.__setattr__(self,'electrodes',electrodes)
  __dataclass_builtins_object__.__setattr__(self,'frequency_hz',frequency_hz)
  __dataclass_builtins_object__.__setattr__(self,'amplitude_ua',amplitude_ua)
  __dataclass_builtins_object__.__setattr__(self,'shape',shape)
  __dataclass_builtins_object__.__setattr__(self,'param',param)
  __dataclass_builtins_object__.__setattr__(self,'site_custom',site_custom)
 return __init__


CREATORS[(True, (('number', 0), ('name', 0), ('site', 1), ('side', 1), ('electrodes', 1), ('frequency_hz', 1), ('amplitude_ua', 1), ('shape', 1), ('param', 1), ('site_custom', 1)))] = __create_fn__


def __create_fn__(MISSING, _HAS_DEFAULT_FACTORY, __dataclass_builtins_object__, _dflt_kind):
 def __init__(self,phases,kind=_dflt_kind):
  __dataclass_builtins_object__.__setattr__(self,'phases',phases)
  __dataclass_builtins_object__.__setattr__(self,'kind',kind)
 return __init__


CREATORS[(True, (('phases', 0), ('kind', 1)))] = __create_fn__


def __create_fn__(MISSING, _HAS_DEFAULT_FACTORY, __dataclass_builtins_object__, _dflt_kind, _dflt_extra):
 def __init__(self,label,start_us,end_us,kind=_dflt_kind,extra=_HAS_DEFAULT_FACTORY):
  __dataclass_builtins_object__.__setattr__(self,'label',label)
  __dataclass_builtins_object__.__setattr__(self,'start_us',start_us)
  __dataclass_builtins_object__.__setattr__(self,'end_us',end_us)
  __dataclass_builtins_object__.__setattr__(self,'kind',kind)
  __dataclass_builtins_object__.__setattr__(self,'extra',_dflt_extra() if extra is _HAS_DEFAULT_FACTORY else extra)
 return __init__


CREATORS[(True, (('label', 0), ('start_us', 0), ('end_us', 0), ('kind', 1), ('extra', 2)))] = __create_fn__


def __create_fn__(MISSING, _HAS_DEFAULT_FACTORY, __dataclass_builtins_object__):
 def __init__(self,channel,start_us,cycles,cycle_us,on_us,ramp_up_us,ramp_down_us,period_num,period_den,amp_num,amp_den,shape):
  __dataclass_builtins_object__.__setattr__(self,'channel',channel)
  __dataclass_builtins_object__.__setattr__(self,'start_us',start_us)
  __dataclass_builtins_object__.__setattr__(self,'cycles',cycles)
  __dataclass_builtins_object__.__setattr__(self,'cycle_us',cycle_us)
  __dataclass_builtins_object__.__setattr__(self,'on_us',on_us)
  __dataclass_builtins_object__.__setattr__(self,'ramp_up_us',ramp_up_us)
  __dataclass_builtins_object__.__setattr__(self,'ramp_down_us',ramp_down_us)
  __dataclass_builtins_object__.__setattr__(self,'period_num',period_num)
  __dataclass_builtins_object__.__setattr__(self,'period_den',period_den)
  __dataclass_builtins_object__.__setattr__(self,'amp_num',amp_num)
  __dataclass_builtins_object__.__setattr__(self,'amp_den',amp_den)
  __dataclass_builtins_object__.__setattr__(self,'shape',shape)
 return __init__


CREATORS[(True, (('channel', 0), ('start_us', 0), ('cycles', 0), ('cycle_us', 0), ('on_us', 0), ('ramp_up_us', 0), ('ramp_down_us', 0), ('period_num', 0), ('period_den', 0), ('amp_num', 0), ('amp_den', 0), ('shape', 0)))] = __create_fn__


def __create_fn__(MISSING, _HAS_DEFAULT_FACTORY, __dataclass_builtins_object__):
 def __init__(self,name,text):
  __dataclass_builtins_object__.__setattr__(self,'name',name)
  __dataclass_builtins_object__.__setattr__(self,'text',text)
 return __init__


CREATORS[(True, (('name', 0), ('text', 0)))] = __create_fn__


def __create_fn__(MISSING, _HAS_DEFAULT_FACTORY, __dataclass_builtins_object__, _dflt_start_pos, _dflt_end_pos):
 def __init__(self,source,line,column,end_line,end_column,start_pos=_dflt_start_pos,end_pos=_dflt_end_pos):
  __dataclass_builtins_object__.__setattr__(self,'source',source)
  __dataclass_builtins_object__.__setattr__(self,'line',line)
  __dataclass_builtins_object__.__setattr__(self,'column',column)
  __dataclass_builtins_object__.__setattr__(self,'end_line',end_line)
  __dataclass_builtins_object__.__setattr__(self,'end_column',end_column)
  __dataclass_builtins_object__.__setattr__(self,'start_pos',start_pos)
  __dataclass_builtins_object__.__setattr__(self,'end_pos',end_pos)
 return __init__


CREATORS[(True, (('source', 0), ('line', 0), ('column', 0), ('end_line', 0), ('end_column', 0), ('start_pos', 1), ('end_pos', 1)))] = __create_fn__


def __create_fn__(MISSING, _HAS_DEFAULT_FACTORY, __dataclass_builtins_object__, _dflt_dim):
 def __init__(self,value,dim=_dflt_dim):
  __dataclass_builtins_object__.__setattr__(self,'value',value)
  __dataclass_builtins_object__.__setattr__(self,'dim',dim)
 return __init__


CREATORS[(True, (('value', 0), ('dim', 1)))] = __create_fn__
